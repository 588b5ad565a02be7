-- Every append rewrites the summary row of each chain it extends. With
-- the table's pages packed full, each new row version went to another
-- page, so every update also inserted into both of the table's indexes
-- and left a dead row behind there. Pages filled to 70% keep room for the
-- next version beside the old one: PostgreSQL then updates in place on the
-- page (a heap-only tuple), touching no index, as long as the state is
-- unchanged. Pages written before this keep their packing until rewritten.
ALTER TABLE chains SET (fillfactor = 70);
