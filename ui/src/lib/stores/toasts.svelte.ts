// Short messages in the corner: what a save or a build did, or what went wrong.
export type Tone = "ok" | "error" | "info";

const MAX_VISIBLE = 4;

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
    // The newest few only: a burst of saves or builds must not stack up the screen.
    this.items = [...this.items, { id, text, tone }].slice(-MAX_VISIBLE);
    if (ms > 0) setTimeout(() => this.dismiss(id), ms);
    return id;
  }

  dismiss(id: number) {
    this.items = this.items.filter((t) => t.id !== id);
  }
}

export const toasts = new Toasts();
