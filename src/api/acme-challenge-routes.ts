/**
 * HTTP-01 challenge responses (RFC 8555 §8.3) on the HTTP port: the CA fetches
 * `http://<name>/.well-known/acme-challenge/<token>` and must get the key authorization as the
 * whole body. Registered only when ACME is on.
 *
 * Promises: answers only tokens the ACME client set (404 otherwise), whatever the Host header,
 * as text/plain; never reveals which tokens exist beyond the one asked for.
 */
import type { FastifyInstance } from "fastify";
import type { HttpChallenges } from "../acme/http-challenges.ts";

export async function acmeChallengeRoutes(app: FastifyInstance, options: { challenges: HttpChallenges }): Promise<void> {
  app.get<{ Params: { token: string } }>("/.well-known/acme-challenge/:token", async (request, reply) => {
    const keyAuthorization = options.challenges.get(request.params.token);
    if (keyAuthorization === null) return reply.code(404).send({ success: false, errors: [{ code: 404, message: "no such ACME challenge" }] });
    return reply.type("text/plain").header("cache-control", "no-store").send(keyAuthorization);
  });
}
