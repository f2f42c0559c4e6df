// The device list as the Devices screen shows it: loaded from the desk (each device with its
// provisioning status), then filtered, sorted and selected in memory (10,000 rows stay
// instant), and reloaded when the desk says devices changed, a build finished or a phone was
// discovered.
import { SvelteSet } from "svelte/reactivity";
import { api, type Device, type DeskEvent } from "../api";
import { compareMac } from "../format";

export type SortKey = "mac" | "name" | "model" | "profile" | "last_seen" | "status";

/**
 * Whether `event` changes what a screen shows: the device list (`mac` undefined) or the page
 * of device `mac`. Builds change statuses and files; a discovered phone joins the list.
 */
export function concerns(event: DeskEvent, mac?: string): boolean {
  switch (event.event) {
    case "devices-changed":
      return mac === undefined || event.all || event.macs.includes(mac);
    case "build-finished":
      return true;
    case "discovered":
      return mac === undefined || event.mac === mac;
    default:
      return false;
  }
}

export function matches(d: Device, query: string): boolean {
  const q = query.trim().toLowerCase();
  if (!q) return true;
  const hay = [d.mac, d.name ?? "", d.model, d.profile ?? "", d.last_ip ?? "", ...Object.values(d.vars)]
    .join(" ")
    .toLowerCase();
  const compact = q.replace(/[:\-.]/g, "");
  return q.split(/\s+/).every((w) => hay.includes(w)) || (compact.length >= 4 && d.mac.includes(compact));
}

export function compare(a: Device, b: Device, key: SortKey): number {
  if (key === "mac") return compareMac(a.mac, b.mac);
  if (key === "status") return (a.status_label ?? "").localeCompare(b.status_label ?? "");
  const av = a[key] ?? "";
  const bv = b[key] ?? "";
  if (typeof av === "number" || typeof bv === "number") return (Number(av) || 0) - (Number(bv) || 0);
  return String(av).localeCompare(String(bv), undefined, { numeric: true, sensitivity: "base" });
}

export class DeviceStore {
  all = $state.raw<Device[]>([]);
  query = $state("");
  sortKey = $state<SortKey>("mac");
  sortAsc = $state(true);
  selected = new SvelteSet<string>();
  loading = $state(false);

  inventory = $derived(this.all.filter((d) => d.state === "inventory"));
  discovered = $derived(this.all.filter((d) => d.state === "discovered"));

  visible = $derived.by(() => {
    const rows = this.inventory.filter((d) => matches(d, this.query));
    const dir = this.sortAsc ? 1 : -1;
    rows.sort((a, b) => dir * compare(a, b, this.sortKey) || compareMac(a.mac, b.mac));
    return rows;
  });

  /** Asked again while loading: one more load follows, so a burst of events costs two. */
  private again = false;
  private current: Promise<void> | null = null;

  /** Loads the list; called while a load runs, it waits for a fresh one after it. */
  load(): Promise<void> {
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = this.fetch().finally(() => (this.current = null));
    return this.current;
  }

  private async fetch() {
    this.loading = true;
    try {
      do {
        this.again = false;
        this.all = await api.listDevices();
      } while (this.again);
      const known = new Set(this.all.map((d) => d.mac));
      for (const mac of [...this.selected]) if (!known.has(mac)) this.selected.delete(mac);
    } finally {
      this.loading = false;
    }
  }

  sortBy(key: SortKey) {
    if (this.sortKey === key) this.sortAsc = !this.sortAsc;
    else {
      this.sortKey = key;
      this.sortAsc = true;
    }
  }

  toggle(mac: string) {
    if (this.selected.has(mac)) this.selected.delete(mac);
    else this.selected.add(mac);
  }

  /** Selects every visible row, or clears when all of them are selected already. */
  toggleAll() {
    const all = this.visible.length > 0 && this.visible.every((d) => this.selected.has(d.mac));
    if (all) this.selected.clear();
    else for (const d of this.visible) this.selected.add(d.mac);
  }
}

export const devices = new DeviceStore();
