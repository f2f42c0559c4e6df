// What an enrolment would leave incomplete, said before it commits: the core's `enroll_check`
// answer turned into the confirmation's lines. The core decides what is missing; this only
// words it. Pure, tested in enrollWarning.test.ts.
import type { MissingVariables } from "../../lib/api";
import { macColons } from "../../lib/format";

export interface EnrollWarning {
  /** One line per phone that lacks variables: "00:0b:82:ab:cd:ef lacks ext, sip_secret". */
  lines: string[];
  /** What enrolling anyway does to those phones, and how to complete them. */
  explanation: string;
}

/** `null` when every phone is complete: then enrolling goes ahead without asking. */
export function enrollWarning(missing: MissingVariables[], profile: string | null, enrolling: number): EnrollWarning | null {
  const lacking = missing.filter((m) => m.missing.length > 0);
  if (lacking.length === 0) return null;
  const lines = lacking.map((m) => `${macColons(m.mac)} lacks ${m.missing.join(", ")}`);
  const one = lacking.length === 1;
  const into = profile ? ` into ${profile}` : "";
  const others = enrolling - lacking.length;
  const rest = others > 0 ? ` The other ${others} phone(s) are complete and get their config at once.` : "";
  const explanation =
    `${one ? "This phone" : `These ${lacking.length} phones`} will be enrolled${into} but marked "needs attention": ` +
    `${one ? "it gets" : "they get"} no config until ${one ? "its" : "their"} missing variables are set ` +
    `(edit the device to add them). Every other phone keeps getting its files.${rest}`;
  return { lines, explanation };
}
