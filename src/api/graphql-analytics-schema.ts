/**
 * The graphql-js half of POST /client/v4/graphql (graphql-analytics.ts): the schema of
 * Cloudflare's email-routing datasets (`emailRoutingAdaptive`, `emailRoutingAdaptiveGroups`),
 * their resolvers over the activity service, and one call that executes a query.
 *
 * Loaded by the route on the first GraphQL request, not at start: graphql-js is 129 modules a
 * mail server that is never asked for analytics does not need in memory (issue 11, RSS).
 *
 * Promises: resolvers see only the zones `visibleZone` hands them (the route decides who may
 * see what); a resolver's error stays in the result's `errors`, with its original error, for
 * the route to present.
 */
import { buildSchema, graphql, GraphQLError, GraphQLScalarType, Kind, type ExecutionResult, type GraphQLSchema } from "graphql";
import type { ActivityFilter } from "../core/activity/activity-service.ts";
import type { AccountServices } from "../core/services.ts";
import { GROUP_DIMENSIONS, type EventRow, type GroupDimension } from "../store/repositories/event-repository.ts";

export { GraphQLError };

const SDL = /* GraphQL */ `
  scalar string
  scalar Time
  scalar Date
  scalar uint64
  scalar float32
  scalar uint8

  type Query {
    viewer: Viewer!
  }

  type Viewer {
    zones(filter: ZoneFilter!): [Zone!]!
  }

  input ZoneFilter {
    zoneTag: string
    zoneTag_in: [string!]
  }

  type Zone {
    zoneTag: string!
    emailRoutingAdaptive(filter: EmailRoutingAdaptiveFilter_InputObject, limit: uint64!, orderBy: [EmailRoutingAdaptiveOrderBy!]): [EmailRoutingAdaptive!]!
    emailRoutingAdaptiveGroups(filter: EmailRoutingAdaptiveFilter_InputObject, limit: uint64!, orderBy: [EmailRoutingAdaptiveGroupsOrderBy!]): [EmailRoutingAdaptiveGroups!]!
  }

  input EmailRoutingAdaptiveFilter_InputObject {
    datetime_geq: Time
    datetime_gt: Time
    datetime_leq: Time
    datetime_lt: Time
    date_geq: Date
    date_leq: Date
    status: string
    from: string
    to: string
  }

  enum EmailRoutingAdaptiveOrderBy {
    datetime_ASC
    datetime_DESC
  }

  enum EmailRoutingAdaptiveGroupsOrderBy {
    count_DESC
  }

  type EmailRoutingAdaptive {
    datetime: Time!
    sessionId: string!
    messageId: string
    from: string!
    to: string!
    subject: string
    status: string!
    action: string!
    spf: string
    dkim: string
    dmarc: string
    arc: string
    errorDetail: string
    isNDR: uint8!
    isSpam: uint8!
    spamScore: float32
    spamThreshold: float32
  }

  type EmailRoutingAdaptiveGroups {
    count: uint64!
    dimensions: EmailRoutingAdaptiveGroupsDimensions!
  }

  type EmailRoutingAdaptiveGroupsDimensions {
    action: string
    status: string
    date: Date
    datetimeHour: Time
    spf: string
    dkim: string
    dmarc: string
    arc: string
  }
`;

function identityScalar(name: string, parse: (value: unknown) => unknown): GraphQLScalarType {
  return new GraphQLScalarType({
    name,
    serialize: (value) => value,
    parseValue: parse,
    parseLiteral(ast) {
      if (ast.kind === Kind.STRING || ast.kind === Kind.INT || ast.kind === Kind.FLOAT) return parse(ast.kind === Kind.STRING ? ast.value : Number(ast.value));
      throw new GraphQLError(`${name}: expected a literal value`);
    },
  });
}

const text = (name: string) => (value: unknown) => {
  if (typeof value !== "string") throw new GraphQLError(`${name}: expected a string`);
  return value;
};

let schema: GraphQLSchema | null = null;
function analyticsSchema(): GraphQLSchema {
  if (schema !== null) return schema;
  const built = buildSchema(SDL);
  const scalars: Record<string, GraphQLScalarType> = {
    string: identityScalar("string", text("string")),
    Time: identityScalar("Time", text("Time")),
    Date: identityScalar("Date", text("Date")),
    uint64: identityScalar("uint64", (value) => {
      const number = Number(value);
      if (!Number.isInteger(number) || number < 0) throw new GraphQLError("uint64: expected a whole number");
      return number;
    }),
    float32: identityScalar("float32", (value) => Number(value)),
    uint8: identityScalar("uint8", (value) => Number(value)),
  };
  for (const [name, scalar] of Object.entries(scalars)) {
    const type = built.getType(name) as GraphQLScalarType;
    Object.assign(type, { serialize: scalar.serialize, parseValue: scalar.parseValue, parseLiteral: scalar.parseLiteral });
  }
  schema = built;
  return schema;
}

interface AdaptiveFilter {
  datetime_geq?: string;
  datetime_gt?: string;
  datetime_leq?: string;
  datetime_lt?: string;
  date_geq?: string;
  date_leq?: string;
  status?: string;
  from?: string;
  to?: string;
}

const MS = 1;

/** Cloudflare's inclusive/exclusive bounds as our [since, until) window. */
function activityFilter(filter: AdaptiveFilter | undefined): ActivityFilter {
  const f = filter ?? {};
  const shift = (value: string | undefined, ms: number): string | undefined => {
    if (value === undefined) return undefined;
    const time = Date.parse(value);
    if (Number.isNaN(time)) throw new GraphQLError(`"${value}" is not a time (e.g. 2026-01-19T11:00:00Z)`);
    return new Date(time + ms).toISOString();
  };
  const since = [shift(f.datetime_geq, 0), shift(f.datetime_gt, MS), f.date_geq === undefined ? undefined : shift(`${f.date_geq}T00:00:00Z`, 0)].filter((v): v is string => v !== undefined).sort().at(-1);
  const until = [shift(f.datetime_lt, 0), shift(f.datetime_leq, MS), f.date_leq === undefined ? undefined : shift(`${f.date_leq}T00:00:00Z`, 86_400_000)].filter((v): v is string => v !== undefined).sort()[0];
  return { since, until, outcome: f.status, from: f.from, to: f.to };
}

function adaptiveRow(row: EventRow) {
  const spam = row.spam_score === null ? null : Number(row.spam_score);
  return {
    datetime: row.received_at.replace(/\.\d{3}Z$/, "Z"),
    sessionId: row.session_id,
    messageId: row.message_id,
    from: row.mail_from,
    to: row.rcpt_to,
    subject: row.subject,
    status: row.outcome,
    action: row.action,
    spf: row.spf,
    dkim: row.dkim,
    dmarc: row.dmarc,
    arc: row.arc,
    // the reply the sender got when it was not a success: the reason, in the sender's words
    errorDetail: row.reply_code !== null && row.reply_code >= 400 ? row.reply_text : null,
    isNDR: row.mail_from === "" ? 1 : 0,
    isSpam: row.outcome === "rejected" && /spam/i.test(row.reply_text ?? "") ? 1 : 0,
    spamScore: spam,
    spamThreshold: null,
  };
}

/** The zone object graphql-js resolves fields on: its datasets are functions of their arguments. */
function zoneNode(services: AccountServices, zoneTag: string) {
  return {
    zoneTag,
    async emailRoutingAdaptive(args: { filter?: AdaptiveFilter; limit: number; orderBy?: string[] }) {
      const oldestFirst = args.orderBy?.[0] === "datetime_ASC";
      return (await services.activity.rows(zoneTag, activityFilter(args.filter), { limit: args.limit, oldestFirst })).map(adaptiveRow);
    },
    async emailRoutingAdaptiveGroups(args: { filter?: AdaptiveFilter; limit: number }, _context: unknown, info: { fieldNodes: readonly { selectionSet?: { selections: readonly unknown[] } }[] }) {
      const dimensions = requestedDimensions(info);
      const groups = await services.activity.groups(zoneTag, activityFilter(args.filter), dimensions, args.limit);
      return groups.map(({ count, ...values }) => ({
        count,
        dimensions: { ...values, ...(values.datetimeHour ? { datetimeHour: `${values.datetimeHour}:00:00Z` } : {}) },
      }));
    },
  };
}

/** The dimensions the query selected under `dimensions { … }`: grouping by exactly those. */
function requestedDimensions(info: { fieldNodes: readonly { selectionSet?: { selections: readonly unknown[] } }[] }): GroupDimension[] {
  const names = new Set<string>();
  for (const node of info.fieldNodes) {
    for (const selection of node.selectionSet?.selections ?? []) {
      const field = selection as { kind: string; name?: { value: string }; selectionSet?: { selections: readonly { kind: string; name?: { value: string } }[] } };
      if (field.kind !== Kind.FIELD || field.name?.value !== "dimensions") continue;
      for (const inner of field.selectionSet?.selections ?? []) if (inner.kind === Kind.FIELD && inner.name !== undefined) names.add(inner.name.value);
    }
  }
  return GROUP_DIMENSIONS.filter((dimension) => names.has(dimension));
}

export interface AnalyticsQuery {
  source: string;
  variableValues: Record<string, unknown> | undefined;
  operationName: string | undefined;
}

/** Executes one query; `visibleZone` answers the zones the caller may see (null: not in the list). */
export async function runAnalyticsQuery(query: AnalyticsQuery, visibleZone: (zoneTag: string) => Promise<AccountServices | null>): Promise<ExecutionResult> {
  return graphql({
    schema: analyticsSchema(),
    ...query,
    rootValue: {
      viewer: {
        async zones(args: { filter: { zoneTag?: string; zoneTag_in?: string[] } }) {
          const tags = [...new Set([...(args.filter.zoneTag === undefined ? [] : [args.filter.zoneTag]), ...(args.filter.zoneTag_in ?? [])])].slice(0, 10);
          const zones = await Promise.all(tags.map(async (tag) => {
            const services = await visibleZone(tag);
            return services === null ? null : zoneNode(services, tag);
          }));
          return zones.filter((zone) => zone !== null);
        },
      },
    },
  });
}
