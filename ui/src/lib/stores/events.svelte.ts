// The desk's change events (devices, profiles, settings, firmware, builds, discovered phones,
// servers), pushed by the desk service over one Tauri Channel. Screens register a listener
// instead of polling; the subscription is made once, on the first listener.
import { eventsApi, type DeskEvent } from "../api";

export type DeskEventListener = (event: DeskEvent) => void;

const listeners = new Set<DeskEventListener>();
let subscription: Promise<void> | null = null;

/** Calls `listener` with every desk event; returns the function that stops it. */
export function onDeskEvent(listener: DeskEventListener): () => void {
  listeners.add(listener);
  if (subscription === null) {
    subscription = eventsApi.deskSubscribe(dispatch).catch((e) => {
      // Try again with the next listener.
      subscription = null;
      console.error("desk events:", e);
    });
  }
  return () => listeners.delete(listener);
}

/**
 * Resolves once the subscription stands (after the first `onDeskEvent`), so a state read
 * after it cannot miss an event that happened in between.
 */
export function deskEventsReady(): Promise<void> {
  return subscription ?? Promise.resolve();
}

/** Hands one event to every listener; one that throws does not stop the others. */
export function dispatch(event: DeskEvent) {
  for (const listener of [...listeners]) {
    try {
      listener(event);
    } catch (e) {
      console.error("desk event listener:", e);
    }
  }
}
