-- The excursion index: the chains holding an excursion record, open when
-- their summary counts open excursions (or keeps no counts). Appends keep
-- it in the transaction that writes the records, so the excursion list
-- pages from it instead of reading every chain.
CREATE TABLE excursion_chains (
    coi  text    PRIMARY KEY,
    open boolean NOT NULL
);
CREATE INDEX excursion_chains_open ON excursion_chains (coi) WHERE open;

-- Chains written before the index: one pass over the records, once.
INSERT INTO excursion_chains (coi, open)
SELECT c.coi,
       NOT coalesce((convert_from(c.info, 'UTF8')::jsonb -> 'open_issues' ->> 'Kept')::boolean, false)
       OR coalesce((convert_from(c.info, 'UTF8')::jsonb -> 'open_issues' ->> 'Excursions')::int, 0) > 0
FROM chains c
WHERE c.coi IN (SELECT DISTINCT chain FROM records WHERE convert_from(body, 'UTF8')::jsonb ->> 'step' = 'excursion');
