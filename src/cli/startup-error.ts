/**
 * StartupError: which step of `startMailroute` failed (opening the store, listening for SMTP,
 * HTTP or HTTPS), with the underlying error as `cause`, so `mailroute start` can say what
 * actually went wrong instead of guessing (a missing certificate is not a busy port).
 */
export type StartupStage = "store" | "smtp-listen" | "http-listen" | "https-listen" | "metrics-listen";

export class StartupError extends Error {
  override readonly name = "StartupError";
  readonly stage: StartupStage;
  /** What the step was about: "127.0.0.1:25" for a listener, the database for the store. */
  readonly target: string;

  constructor(stage: StartupStage, target: string, cause: unknown) {
    super(`${stage} ${target}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.stage = stage;
    this.target = target;
  }
}
