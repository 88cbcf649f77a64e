// What every zone view receives: the API client of the signed-in token and the chosen zone.
import type { ApiClient } from "../api-client.ts";
import type { Zone } from "../api-types.ts";

export interface ViewProps {
  api: ApiClient;
  zone: Zone;
}
