/**
 * Cloudflare's v4 success envelope: `{success, errors, messages, result, result_info}`.
 */
import type { Page } from "../core/paging.ts";

export interface ResultInfo {
  page: number;
  per_page: number;
  count: number;
  total_count: number;
  total_pages: number;
}

export function ok<T>(result: T, resultInfo?: ResultInfo): { success: true; errors: []; messages: []; result: T; result_info?: ResultInfo } {
  return resultInfo === undefined ? { success: true, errors: [], messages: [], result } : { success: true, errors: [], messages: [], result, result_info: resultInfo };
}

export function paged<T, U>(page: Page<T>, present: (item: T) => U) {
  return ok(page.items.map(present), {
    page: page.page,
    per_page: page.perPage,
    count: page.items.length,
    total_count: page.totalCount,
    total_pages: Math.max(1, Math.ceil(page.totalCount / page.perPage)),
  });
}
