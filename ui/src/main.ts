import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";

markFirstDataPaint();
mount(App, { target: document.getElementById("app")! });

/** Records when the first frame showing the desk's devices (tiles or rows) was painted, as
 * `window.__firstDataPaint` (ms since the epoch): the window test on a 1,000-device desk reads
 * it to measure launch → data on screen. */
function markFirstDataPaint() {
  const seen = new MutationObserver(() => {
    if (!document.querySelector("[data-tile], [data-mac]")) return;
    seen.disconnect();
    // The second frame callback runs after the frame with the data was painted.
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        (window as unknown as { __firstDataPaint?: number }).__firstDataPaint = Date.now();
      }),
    );
  });
  seen.observe(document.documentElement, { childList: true, subtree: true });
}
