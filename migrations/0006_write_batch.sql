-- A group commit's write (see 0003), as a function so its plan is made once per connection
-- and kept. Sent as a plain statement it was planned again on every commit, which cost about
-- as much Postgres CPU as running it. A kept plan is made once, maybe on young tables with no
-- statistics, so nothing in it may depend on them: it only updates rows by primary key (pinned
-- to nested loops) and inserts. Records the hub took to be absent without reading them come
-- first (p_new of them) and are inserted by a plain INSERT: the primary key itself says whether
-- one already existed, with no lookup a stale plan could turn into a scan. One that did fails
-- the statement with unique_violation, which the hub treats as the guard's refusal: nothing is
-- written and the batch is planned again from a read. (ON CONFLICT DO NOTHING would check the
-- key twice per record. A data-modifying CTE runs even when nothing reads it.)
CREATE OR REPLACE FUNCTION synchub_write_batch(
  p_users text[], p_seqs int8[], p_seen int8[], p_min int8[], p_epochs text[], p_scopes text[],
  p_dev_users text[], p_dev_ids text[], p_dev_mids int8[], p_dev_seen int8[], p_now int8,
  r_user text[], r_collection text[], r_id text[], r_seq int8[], r_data bytea[], r_parent text[],
  r_created_at int8[], r_updated_at int8[], r_deleted_at int8[], r_purge_at int8[], r_replaced_by text[],
  r_conflict_of text[], r_device text[], r_created_seq int8[], r_trashed_with text[],
  o_user text[], o_device text[], o_mid int8[], o_result bytea[],
  p_new int8
) RETURNS boolean
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
  ok boolean;
BEGIN
  WITH usr AS (
    UPDATE user_state s SET seq = k.seq
      FROM unnest(p_users, p_seqs, p_seen, p_min, p_epochs, p_scopes) AS k(u, seq, seen, min, epoch, scope)
     WHERE s.user_id = k.u AND s.seq = k.seen AND s.min_valid_seq = k.min AND s.epoch = k.epoch
       AND s.scope IS NOT DISTINCT FROM k.scope::text[]
    RETURNING 1
  ), dev AS (
    UPDATE devices d SET last_mid = k.m, last_seen = p_now
      FROM unnest(p_dev_users, p_dev_ids, p_dev_mids, p_dev_seen) AS k(u, i, m, seen)
     WHERE d.user_id = k.u AND d.id = k.i AND d.last_mid = k.seen AND d.revoked_at IS NULL
    RETURNING 1
  ), incoming AS (
    SELECT * FROM unnest(r_user, r_collection, r_id, r_seq, r_data, r_parent, r_created_at, r_updated_at, r_deleted_at,
                         r_purge_at, r_replaced_by, r_conflict_of, r_device, r_created_seq, r_trashed_with)
           WITH ORDINALITY AS r(user_id, collection, id, seq, data, parent_id, created_at, updated_at, deleted_at,
                                purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with, n)
  ), fresh AS (
    INSERT INTO records (user_id, collection, id, seq, data, parent_id, created_at, updated_at, deleted_at,
                         purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with)
    SELECT user_id, collection, id, seq, data, parent_id, created_at, updated_at, deleted_at,
           purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with FROM incoming WHERE n <= p_new
  ), rec AS (
    INSERT INTO records (user_id, collection, id, seq, data, parent_id, created_at, updated_at, deleted_at,
                         purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with)
    SELECT user_id, collection, id, seq, data, parent_id, created_at, updated_at, deleted_at,
           purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with FROM incoming WHERE n > p_new
    ON CONFLICT (user_id, collection, id) DO UPDATE SET
      seq = EXCLUDED.seq, data = EXCLUDED.data, parent_id = EXCLUDED.parent_id, updated_at = EXCLUDED.updated_at,
      deleted_at = EXCLUDED.deleted_at, purge_at = EXCLUDED.purge_at, replaced_by = EXCLUDED.replaced_by,
      conflict_of = EXCLUDED.conflict_of, device_id = EXCLUDED.device_id, trashed_with = EXCLUDED.trashed_with
    RETURNING 1
  ), res AS (
    INSERT INTO op_results (user_id, device_id, mid, result)
    SELECT * FROM unnest(o_user, o_device, o_mid, o_result)
    RETURNING 1
  )
  SELECT synchub_write_guard((SELECT count(*) FROM usr) = cardinality(p_users)
                             AND (SELECT count(*) FROM dev) = cardinality(p_dev_users))
    INTO ok;
  RETURN ok;
END
$$;
