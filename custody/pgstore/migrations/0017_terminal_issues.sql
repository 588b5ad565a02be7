-- The ended chains that wait for QA (custody.TerminalIssueIndex): a chain
-- in a terminal state whose summary counts open issues or keeps no counts
-- (custody.WaitsInTerminalState). The append sets waiting with the summary
-- it writes, in the same row; the partial index lists the few that wait
-- in COI order, so the console finds them without reading every cancelled
-- chain. A row whose waiting is unchanged keeps its heap-only update.
ALTER TABLE chains ADD COLUMN waiting boolean NOT NULL DEFAULT false;
CREATE INDEX chains_waiting ON chains (coi) WHERE waiting;

-- Chains written before the index: one pass over the terminal states' summaries, once.
UPDATE chains SET waiting = true
WHERE state IN ('infused', 'cancelled')
  AND (NOT coalesce((convert_from(info, 'UTF8')::jsonb -> 'open_issues' ->> 'Kept')::boolean, false)
       OR coalesce((convert_from(info, 'UTF8')::jsonb -> 'open_issues' ->> 'Excursions')::int, 0)
        + coalesce((convert_from(info, 'UTF8')::jsonb -> 'open_issues' ->> 'SealsBroken')::int, 0)
        + coalesce((convert_from(info, 'UTF8')::jsonb -> 'open_issues' ->> 'Mismatches')::int, 0) > 0);
