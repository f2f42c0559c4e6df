// What came of a re-provision or reboot, in plain words, for toasts and inline results. The
// desk decides the outcome; this only words it (the desk's own `summary` line is the CLI's).
import type { ResyncOutcome, ResyncResult } from "./api";
import { macColons } from "./format";

/** The outcome alone: "answered 200 OK", "no answer after 4 sends (4.0 s)", "not sent: …". */
export function outcomeText(outcome: ResyncOutcome): string {
  switch (outcome.kind) {
    case "answered":
      return `answered ${outcome.code} ${outcome.reason}${outcome.authenticated ? " (after our Digest answer)" : ""}`.trimEnd();
    case "challenge-failed":
      return `challenge failed (${outcome.code}): ${outcome.reason}`;
    case "no-answer": {
      const provisional = outcome.provisional ? `, only a provisional ${outcome.provisional}` : "";
      return `no answer after ${outcome.sends} send${outcome.sends === 1 ? "" : "s"} (${(outcome.waited_ms / 1000).toFixed(1)} s${provisional})`;
    }
    case "not-sent":
      return `not sent: ${outcome.reason}`;
  }
}

/** The phone took it: a 2xx answer. */
export function accepted(outcome: ResyncOutcome): boolean {
  return outcome.kind === "answered" && outcome.code >= 200 && outcome.code < 300;
}

/** One device's line: who, where it went, what came of it. */
export function resultText(result: ResyncResult): string {
  const who = result.name ? `${result.name} (${macColons(result.mac)})` : macColons(result.mac);
  const what = result.reboot ? "reboot" : "re-provision";
  const to = result.target ? ` to ${result.target}` : "";
  return `${who}: ${what}${to}: ${outcomeText(result.outcome)}`;
}

/** Several devices at once: "3 took it, 1 no answer, 2 not sent". */
export function tallyText(results: ResyncResult[]): string {
  const words: Record<ResyncOutcome["kind"] | "refused", string> = {
    answered: "took it",
    refused: "refused",
    "challenge-failed": "challenge failed",
    "no-answer": "no answer",
    "not-sent": "not sent",
  };
  const counts = new Map<string, number>();
  for (const r of results) {
    const key = r.outcome.kind === "answered" && !accepted(r.outcome) ? "refused" : r.outcome.kind;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${n} ${words[k as keyof typeof words]}`).join(", ");
}
