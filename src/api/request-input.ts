/**
 * Reading what a request carries, strictly: a query parameter given twice, a number that is
 * not one, a body that is not a JSON object or has a field this endpoint does not take — each
 * is a 400 naming the field, never a crash deeper in (a repeated `?to=` once reached
 * `input.trim is not a function` as a 500).
 */
import type { FastifyRequest } from "fastify";
import { ApiError } from "./api-error.ts";

type Query = Record<string, string | string[] | undefined>;

export function queryString(request: FastifyRequest, name: string): string | undefined {
  const value = (request.query as Query)[name];
  if (Array.isArray(value)) throw new ApiError("VALIDATION", { message: `${name}: must be given once` }, { field: name });
  return value;
}

export function queryInt(request: FastifyRequest, name: string): number | undefined {
  const value = queryString(request, name);
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value)) throw new ApiError("VALIDATION", { message: `${name}: "${value}" is not a whole number` }, { field: name });
  return Number(value);
}

export function queryBool(request: FastifyRequest, name: string): boolean | undefined {
  const value = queryString(request, name);
  if (value === undefined || value === "") return undefined;
  if (value !== "true" && value !== "false") throw new ApiError("VALIDATION", { message: `${name}: must be true or false` }, { field: name });
  return value === "true";
}

export function queryEnum<T extends string>(request: FastifyRequest, name: string, allowed: readonly T[]): T | undefined {
  const value = queryString(request, name);
  if (value === undefined || value === "") return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new ApiError("VALIDATION", { message: `${name}: must be one of ${allowed.join(", ")}` }, { field: name });
  return value as T;
}

export function paging(request: FastifyRequest): { page?: number; perPage?: number } {
  return { page: queryInt(request, "page"), perPage: queryInt(request, "per_page") };
}

/**
 * The JSON body as an object with only the `allowed` fields. An absent body reads as `{}`
 * (Cloudflare's POST …/enable works with or without one).
 */
export function bodyObject(request: FastifyRequest, allowed: readonly string[]): Record<string, unknown> {
  const body = request.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body)) throw new ApiError("VALIDATION", { message: "body: must be a JSON object" }, { field: "body" });
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new ApiError("UNKNOWN_FIELD", { field: key, allowed: allowed.length === 0 ? "no fields" : allowed.join(", ") }, { field: key });
  }
  return body as Record<string, unknown>;
}
