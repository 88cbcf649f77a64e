/** The REST API's result shapes the dashboard reads (Cloudflare's, plus mailroute's extensions). */

export interface Zone {
  id: string;
  name: string;
  account: { id: string; name: string };
  meta?: { mailroute_mx?: string };
}

export interface ZoneSettings {
  id: string;
  name: string;
  enabled: boolean;
  status: string;
  support_subaddress: boolean;
  dot_insensitive: boolean;
  sign_outbound: boolean;
  authentication: { enforce_dmarc: boolean; require_auth: boolean; reject_quarantine: boolean; spam_threshold: number | null };
}

export interface RuleAction {
  type: string;
  value?: string[];
}

export interface Rule {
  id: string;
  name: string;
  enabled: boolean;
  priority: number;
  matchers: { type: string; field?: string; value?: string }[];
  actions: RuleAction[];
  status?: "active" | "inactive" | "disabled";
  inactive_reasons?: string[];
}

export interface CatchAll {
  id: string;
  name: string;
  enabled: boolean;
  actions: RuleAction[];
}

export interface Address {
  id: string;
  email: string;
  verified: string | null;
  created: string;
  modified: string;
}

export interface DnsRecord {
  type: string;
  name: string;
  content: string;
  priority?: number | null;
  ttl: number;
  purpose?: string;
}

export interface AuditEntry {
  id: string;
  action: { type: string; result: string; description?: string | null; time: string };
  actor: { id: string; name?: string; context: string; ip_address?: string | null; token_name?: string | null };
  resource: { id: string | null; type: string };
  zone: { id: string } | null;
  when: string;
}

export interface ActivityItem {
  id: string;
  received_at: string;
  from: string;
  to: string;
  subject: string | null;
  action: string;
  outcome: string;
  reply_code: number | null;
  reply_text: string | null;
  upstream: string | null;
  spf: string | null;
  dkim: string | null;
  dmarc: string | null;
  arc: string | null;
  spam_score: number | null;
  size: number | null;
  duration_ms: number | null;
  message_id: string | null;
}
