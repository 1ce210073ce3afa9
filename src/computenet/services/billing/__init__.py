"""Money for work done: prices and holds, charging and settlement, re-pricing, usage reports, enforcement at the clusters, exhaustion and storage metering."""
