// Short messages in the corner: what a save or a build did, or what went wrong.
export type Tone = "ok" | "error" | "info";

export interface Toast {
  id: number;
  text: string;
  tone: Tone;
}

class Toasts {
  items = $state<Toast[]>([]);
  #next = 1;

  push(text: string, tone: Tone = "ok", ms = 5000): number {
    const id = this.#next++;
    this.items = [...this.items, { id, text, tone }];
    if (ms > 0) setTimeout(() => this.dismiss(id), ms);
    return id;
  }

  dismiss(id: number) {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
