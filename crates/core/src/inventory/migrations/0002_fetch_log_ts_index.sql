-- 0002: drop the fetch log's index on ts alone.
-- Every query the tools run on the fetch log is for one device, newest first, which the
-- (mac, ts) index answers. The ts index only cost every insert: in a boot storm, about
-- 1.5 us of the ~10 us that logging one fetch costs.
DROP INDEX IF EXISTS fetch_log_ts;
