/**
 * Page-number paging as Cloudflare's v4 API does it (`page` from 1, `per_page`), shared by
 * every list in core/ so the API, CLI and dashboard page the same way.
 */
import { ValidationError } from "./validation-error.ts";

export interface PageRequest {
  page?: number;
  perPage?: number;
}

export interface Page<T> {
  items: T[];
  page: number;
  perPage: number;
  totalCount: number;
}

export interface PageWindow {
  page: number;
  perPage: number;
  limit: number;
  offset: number;
}

export function pageWindow(request: PageRequest = {}, defaults: { perPage: number; maxPerPage: number } = { perPage: 20, maxPerPage: 50 }): PageWindow {
  const page = request.page ?? 1;
  const perPage = request.perPage ?? defaults.perPage;
  if (!Number.isInteger(page) || page < 1) throw new ValidationError("page", "must be a whole number from 1");
  if (!Number.isInteger(perPage) || perPage < 1 || perPage > defaults.maxPerPage) throw new ValidationError("per_page", `must be a whole number from 1 to ${defaults.maxPerPage}`);
  return { page, perPage, limit: perPage, offset: (page - 1) * perPage };
}
