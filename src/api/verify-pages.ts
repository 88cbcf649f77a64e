/**
 * The page behind a verification link: GET shows which address would be verified and a
 * button; only the POST that button sends verifies, because mail scanners and link previews
 * fetch URLs (a GET must change nothing). The secret in the URL is the capability, so the
 * page sends no Referer, is never cached and cannot be framed.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { LinkState, VerificationLinks } from "../core/addresses/verification-links.ts";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .header("referrer-policy", "no-referrer")
    .header("cache-control", "no-store")
    .header("x-frame-options", "DENY")
    .type("text/html; charset=utf-8")
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#1f2328}button{font:inherit;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #1f6feb;background:#1f6feb;color:#fff;cursor:pointer}button:focus{outline:3px solid #9ec5fe}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>${body}</main></body></html>`);
}

const FAILURES: Record<Exclude<LinkState["state"], "valid">, [number, string, string]> = {
  expired: [410, "This link has expired", "Verification links work for 24 hours. Ask for a new one from the dashboard, the API or <code>mailroute address resend</code>."],
  used: [410, "This link was already used", "The address it was sent to is verified (or was verified by an earlier click). Nothing more to do."],
  unknown: [404, "This link is not valid", "Check that the whole link was copied, or ask for a new one."],
};

export function registerVerifyPages(root: FastifyInstance, links: VerificationLinks): void {
  void root.register(async (app) => verifyPages(app, links));
}

async function verifyPages(app: FastifyInstance, links: VerificationLinks): Promise<void> {
  // The confirm button posts an empty HTML form; its body carries nothing we read.
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 1024 }, (_request, _body, done) => done(null, undefined));
  app.get<{ Params: { secret: string } }>("/verify/:secret", async (request, reply) => {
    const state = await links.describe(request.params.secret);
    if (state.state !== "valid") return page(reply, ...FAILURES[state.state]);
    return page(
      reply,
      200,
      "Confirm this forwarding address",
      `<p>Forward mail to <strong>${escapeHtml(state.email)}</strong>?</p><p>Confirm only if you asked for this. Nothing is forwarded until you do.</p>
<form method="post"><button type="submit">Confirm ${escapeHtml(state.email)}</button></form>`,
    );
  });

  app.post<{ Params: { secret: string } }>("/verify/:secret", async (request, reply) => {
    const state = await links.confirm(request.params.secret);
    if (state.state !== "valid") return page(reply, ...FAILURES[state.state]);
    return page(reply, 200, "Address verified", `<p><strong>${escapeHtml(state.email)}</strong> is verified. Mail for the rules that use it is forwarded from now on.</p>`);
  });
}
