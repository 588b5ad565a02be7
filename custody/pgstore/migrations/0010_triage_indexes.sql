-- The access-request index and the overdue follow-up index: small rows
-- the triage queue, the decision figures and the overdue follow-up list
-- read instead of folding chains. Appends keep both in the transaction
-- that writes the records. Times are Unix nanoseconds (NULL: none), as
-- the records hold them to the nanosecond.

-- access_rows holds one row per expanded-access request (custody.AccessRow),
-- filed under the request chain's journey state (state); view_state is
-- the row's own state (approved or declined for a decided request).
CREATE TABLE access_rows (
    coi           text   PRIMARY KEY,
    state         text   NOT NULL,
    view_state    text   NOT NULL,
    urgency       text   NOT NULL,
    treatment     text   NOT NULL,
    manufacturing text   NOT NULL,
    submitted     bigint,
    decided       bigint,
    paused        bigint NOT NULL,
    waiting_since bigint,
    assignee      text   NOT NULL
);
CREATE INDEX access_rows_state ON access_rows (state, coi);

-- followup_pending holds one row per infused chain
-- (custody.FollowUpPending): its product, sites, infusion time and the
-- follow-up time points (days) already recorded, in increasing order.
CREATE TABLE followup_pending (
    coi           text      PRIMARY KEY,
    product       text      NOT NULL,
    collection    text      NOT NULL,
    manufacturing text      NOT NULL,
    treatment     text      NOT NULL,
    infused       bigint,
    done          integer[] NOT NULL
);

-- index_builds names the indexes that hold every chain: the chains
-- written before an index was kept get their rows when the store is
-- opened (folding their records, which SQL cannot), and a request record
-- appended without its row removes the access index's name, so the next
-- open rebuilds it.
CREATE TABLE index_builds (
    name text PRIMARY KEY
);
