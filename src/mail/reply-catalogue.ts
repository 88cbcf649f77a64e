/**
 * The reply catalogue: every SMTP answer mailroute itself composes, in one table, as
 * Postfix keeps cleanup_strerror. Codes follow RFC 5321 §4.2 and enhanced codes RFC 3463;
 * nothing else in the code base writes a reply code. Texts are templates with `{name}`
 * placeholders, filled by SmtpReply, which strips anything that could split a reply line.
 */

export interface ReplyTemplate {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

function reply(code: number, enhanced: string, text: string): ReplyTemplate {
  return Object.freeze({ code, enhanced, text });
}

export const replies = Object.freeze({
  // Connection (issue 3: abuse defences)
  DNSBL_LISTED: reply(554, "5.7.1", "Service unavailable; client host [{client}] blocked using {zone} ({codes})"),
  TOO_MANY_CONNECTIONS: reply(421, "4.7.0", "{hop}: Too many connections from {client} (at most {limit} at a time), try again later"),
  TOO_MANY_ERRORS: reply(421, "4.7.0", "{hop}: Too many refused recipients in one session (more than {limit}), closing connection"),
  TOO_MANY_COMMANDS: reply(421, "4.7.0", "{hop}: Too many commands before MAIL from {client} (at most {limit}), closing connection"),

  // MAIL FROM
  SENDER_SYNTAX: reply(501, "5.1.7", "<{address}>: Sender address syntax error: {detail}"),
  // RFC 5321 §4.3.2 lists 451 (not 450) among MAIL's temporary replies.
  MESSAGE_RATE_LIMITED: reply(451, "4.7.1", "Too much mail from {client} (at most {limit} messages a minute), try again in {seconds} seconds"),

  // RCPT TO (DESIGN §3: refused here, never bounced later)
  RCPT_UNKNOWN: reply(550, "5.1.1", "<{address}>: Recipient address rejected: no such address here"),
  RCPT_SYNTAX: reply(501, "5.1.3", "<{address}>: Recipient address syntax error: {detail}"),
  RELAY_DENIED: reply(550, "5.7.1", "<{address}>: Relay access denied"),
  ROUTING_TRICK: reply(550, "5.7.1", "<{address}>: Relay access denied: {detail} is not accepted"),
  ZONE_DISABLED: reply(550, "5.7.1", "<{address}>: Recipient address rejected: email routing is disabled for {domain}"),
  RULE_INACTIVE: reply(550, "5.1.1", "<{address}>: Recipient address rejected: this address is not active yet (destination not verified)"),
  RULE_REJECT: reply(550, "5.7.1", "<{address}>: {reason}"),
  TOO_MANY_RECIPIENTS: reply(452, "4.5.3", "Too many recipients (at most {limit} per message)"),
  PLAN_DIFFERS: reply(452, "4.5.3", "<{address}>: Please send to this recipient in a separate transaction"),
  WORKER_UNAVAILABLE: reply(451, "4.3.2", "<{address}>: Email Worker \"{script}\" cannot run: the worker runtime is not available"),
  WORKER_NOT_DEPLOYED: reply(451, "4.3.2", "<{address}>: Email Worker \"{script}\" is not deployed; try again later"),
  SRS_FORGED: reply(550, "5.7.1", "<{address}>: Recipient address rejected: invalid SRS signature"),
  SRS_EXPIRED: reply(550, "5.7.1", "<{address}>: Recipient address rejected: SRS address has expired"),
  SRS_MALFORMED: reply(550, "5.1.1", "<{address}>: Recipient address rejected: malformed SRS address"),
  SRS_NULL_SENDER_ONLY: reply(550, "5.7.1", "<{address}>: SRS return addresses accept only bounces (null sender)"),

  // DATA
  MESSAGE_TOO_BIG: reply(552, "5.3.4", "Message exceeds the fixed maximum message size of {limit} bytes"),
  // Inbound authentication (issue 3; Cloudflare's postmaster requirements)
  DMARC_REJECT: reply(550, "5.7.1", "Message rejected: it fails DMARC for {domain}, whose owner asks receivers to reject such mail (spf={spf}, dkim={dkim})"),
  AUTH_REQUIRED: reply(550, "5.7.26", "Message rejected: it passes neither SPF nor DKIM (spf={spf}, dkim={dkim}); mail must be authenticated"),
  AUTH_TEMPFAIL: reply(451, "4.7.0", "{hop}: could not authenticate the message ({detail}), please try again later"),
  SPAM_REJECT: reply(550, "5.7.1", "Message rejected as spam (score {score}, above {threshold})"),
  ACCEPTED: reply(250, "2.0.0", "Ok: queued as {id}, delivered to {count} destination(s)"),
  ACCEPTED_PARTIAL: reply(250, "2.0.0", "Ok: queued as {id}, delivered to {count} destination(s); {failed} destination(s) refused it permanently"),
  ACCEPTED_DROPPED: reply(250, "2.0.0", "Ok: queued as {id}"),
  // Queue delivery mode (issue 13): the deferred destinations are stored durably and retried.
  ACCEPTED_QUEUED: reply(250, "2.0.0", "Ok: queued as {id}, delivered to {count} destination(s); {queued} deferred destination(s) will be retried"),
  // The forwarding address is private: the sender hears the upstream's answer, never where it went.
  UPSTREAM_TEMPORARY: reply(451, "4.4.0", "{hop}: forwarding deferred by the destination server: {upstream}"),
  UPSTREAM_PERMANENT: reply(550, "5.0.0", "{hop}: forwarding refused by the destination server: {upstream}"),
  LOCAL_ERROR: reply(451, "4.3.0", "{hop}: local error in processing, please try again later"),
  // Our own delivery failures, as the sender hears them (issue 13): never dressed up as the
  // destination server's answer, and never naming the private destination or its servers.
  FORWARDING_TIMED_OUT: reply(451, "4.4.7", "{hop}: forwarding timed out before the destination server answered, please try again later"),
  FORWARDING_UNREACHABLE: reply(451, "4.4.1", "{hop}: forwarding deferred: the destination server could not be reached, please try again later"),
  FORWARDING_DNS_FAILED: reply(451, "4.4.3", "{hop}: forwarding deferred: the destination's mail servers could not be looked up, please try again later"),
  FORWARDING_TLS_UNMET: reply(451, "4.7.5", "{hop}: forwarding deferred: no destination server met the TLS security its domain's MTA-STS policy requires, please try again later"),
  FORWARDING_NO_SUCH_DOMAIN: reply(550, "5.1.2", "{hop}: forwarding failed: the destination domain does not exist"),
  FORWARDING_NULL_MX: reply(550, "5.1.10", "{hop}: forwarding failed: the destination domain accepts no mail"),
  // Cluster mode (issue 13): the node lost its database; routing on the configuration it last
  // saw could accept mail for a rule deleted since, so the sender keeps the message and retries.
  STORE_UNAVAILABLE: reply(451, "4.3.0", "{hop}: configuration store unreachable, please try again later"),
  // Email Workers (issue 4): setReject(reason), and a worker that threw or ran out of time.
  WORKER_REJECT: reply(550, "5.7.1", "{reason}"),
  // The worker's own error text stays with the operator (worker tail, activity log): it may
  // carry secrets or private addresses. The sender gets the incident id that finds it there.
  WORKER_FAILED: reply(451, "4.3.0", "{hop}: the Email Worker for this address failed (incident {incident}), please try again later"),
  WORKER_TIMED_OUT: reply(451, "4.3.0", "{hop}: the Email Worker for this address ran out of time (incident {incident}), please try again later"),
  // Its share of worker capacity (slots, message memory) stayed in use for half its deadline.
  WORKER_BUSY: reply(451, "4.3.2", "{hop}: the Email Worker for this address is busy (incident {incident}), please try again later"),
  ACCEPTED_ANSWERED: reply(250, "2.0.0", "Ok: queued as {id}, answered by the Email Worker"),

  // Delivery attempts: our own account of one destination's attempt when no upstream answered
  // it (activity log, delivery ledger, a worker's forward() error). The sender hears the
  // FORWARDING_* entry of the same kind instead (mail/dispatch-reply.ts).
  ATTEMPT_DNS_FAILED: reply(451, "4.4.3", "cannot resolve {domain}: {detail}"),
  ATTEMPT_NO_SUCH_DOMAIN: reply(550, "5.1.2", "{detail}"),
  // RFC 7505: a null MX means the domain accepts no mail
  ATTEMPT_NULL_MX: reply(550, "5.1.10", "{detail}"),
  ATTEMPT_NO_TARGET: reply(451, "4.4.1", "no delivery target for {domain}"),
  ATTEMPT_UNREACHABLE: reply(451, "4.4.1", "{detail}"),
  ATTEMPT_TIMED_OUT: reply(451, "4.4.7", "delivery to {target} timed out"),
  ATTEMPT_NOT_TRIED: reply(451, "4.4.7", "relay deadline reached before this destination was tried"),
  ATTEMPT_MTA_STS_UNKNOWN: reply(451, "4.7.0", "cannot determine the MTA-STS policy of {domain}: {detail}"),
  // RFC 8461 §5.1: temporary whatever the MX answered; 4.7.4 (no STARTTLS, MX not listed) or
  // 4.7.5 (handshake or certificate), chosen by outbound-tls.ts
  ATTEMPT_TLS_POLICY: reply(451, "4.7.4", "{detail} (MTA-STS policy enforce)"),
  ATTEMPT_HELD: reply(451, "4.3.0", "another delivery attempt of this message to this destination may still be running"),
  ATTEMPT_LEDGER_UNAVAILABLE: reply(451, "4.3.0", "the delivery ledger cannot record this attempt"),

  // Session
  SERVICE_SHUTTING_DOWN: reply(421, "4.3.2", "{hop}: Service shutting down, closing transmission channel"),

  // Delivery intent (issue 8 item 9): an earlier attempt of this very message may still be
  // delivering (or crashed mid-way); the sender retries after it settled (at most the relay timeout).
  FORWARDING_HELD: reply(451, "4.3.0", "{hop}: forwarding held: an earlier attempt to deliver this message has not settled yet, please try again later"),
  // Issue 8: SMTP-side hardening. Deadlines (Postfix's smtpd_timeout per request, and a
  // smtpd_min_data_rate floor for DATA), command floods, over-long lines, bare CR/LF in DATA.
  COMMAND_TIMEOUT: reply(421, "4.4.2", "{hop}: Timeout: no complete command within {seconds} seconds, closing connection"),
  TRANSACTION_TIMEOUT: reply(421, "4.4.2", "{hop}: Timeout: no DATA within {seconds} seconds of connecting or of the last message, closing connection"),
  DATA_TIMEOUT: reply(421, "4.4.2", "{hop}: Timeout: message data slower than {rate} bytes a second, closing connection"),
  TOO_MANY_JUNK_COMMANDS: reply(421, "4.7.0", "{hop}: Too many NOOP, VRFY, EXPN, HELP or ETRN commands (more than {limit}), closing connection"),
  TOO_MANY_RCPT_COMMANDS: reply(421, "4.7.0", "{hop}: Too many RCPT commands in one transaction (more than {limit}), closing connection"),
  // RFC 5321 §4.5.3.1.4 and §4.5.3.1.6: "500 Line too long".
  LINE_TOO_LONG: reply(500, "5.5.2", "Line too long (at most {limit} characters)"),
  TOO_MANY_LONG_LINES: reply(421, "4.7.0", "{hop}: Too many over-long lines, closing connection"),
  // RFC 5321 §2.3.8: CR and LF only ever together; a bare one is how SMTP smuggling starts.
  BARE_LINE_ENDING: reply(554, "5.5.2", "Message refused: bare {char} in the message; lines must end with CRLF (RFC 5321 section 2.3.8)"),
});

export type ReplyName = keyof typeof replies;
