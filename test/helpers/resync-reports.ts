/** The counters of a ResyncReport that moved nothing, for tests that make up reports. */
export const NOTHING_MOVED = {
  bucketsDiffering: 0,
  entriesSent: 0,
  entriesReceived: 0,
  entriesRefused: 0,
  entriesBehindHorizon: 0,
  entriesOfRemoved: 0,
  bytesSent: 0,
  bytesReceived: 0,
  bucketsLevelled: 0,
} as const;
