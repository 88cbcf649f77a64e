// The V8 flags the mailroute service runs with, in one place: the `mailroute` launcher
// (bin/mailroute.js) passes them to the pinned Node, and the benchmarks start the service with
// them, so what is measured is what operators run. (`npm start` and packaging/mailroute.service
// name them on their command lines, which cannot import this file: keep them equal.)
//
// A 4 MiB young generation (V8's default grows it to 16–32 MiB per semi-space under load): the
// per-message garbage is short-lived, so scavenging it sooner costs no measurable CPU, and it
// kept peak RSS at 50 SMTP sessions near 310–330 MiB instead of 420–465 (issue 11, measured
// side by side).
export const SERVICE_NODE_FLAGS = Object.freeze(["--max-semi-space-size=4"]);
