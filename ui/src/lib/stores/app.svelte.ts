// Which screen is open, the desk's summary, and the device or profile open on a screen.
import { api, type DeskInfo } from "../api";

export type Screen = "live" | "devices" | "profiles" | "firmware" | "settings";
export const SCREENS: { id: Screen; label: string }[] = [
  { id: "live", label: "Live" },
  { id: "devices", label: "Devices" },
  { id: "profiles", label: "Profiles" },
  { id: "firmware", label: "Firmware" },
  { id: "settings", label: "Settings" },
];

class AppStore {
  // Live is the home screen: a technician opens the app to watch phones provision.
  screen = $state<Screen>("live");
  desk = $state<DeskInfo | null>(null);
  /** MAC of the device page shown on the Devices screen, if any. */
  openDevice = $state<string | null>(null);
  /** Bumped when the window regains focus, so screens re-read files edited elsewhere. */
  refresh = $state(0);

  async loadDesk() {
    this.desk = await api.deskInfo();
  }

  go(screen: Screen) {
    this.screen = screen;
  }
}

export const app = new AppStore();
