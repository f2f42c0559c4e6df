// What an exported hand-over report says in its toast.
import type { ReportWritten } from "./api";
import { bytes } from "./format";

/** "Saved the PDF report of Acme (12 phones, 2 with problems) to /path (34.0 KB)". */
export function writtenText(done: ReportWritten): string {
  const problems = done.summary.problems ? `, ${done.summary.problems} with problems` : "";
  const phones = `${done.summary.devices} phone${done.summary.devices === 1 ? "" : "s"}`;
  return `Saved the ${done.format.toUpperCase()} report of ${done.site} (${phones}${problems}) to ${done.path} (${bytes(done.bytes)})`;
}
