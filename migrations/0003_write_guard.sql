-- A group commit reads what it needs, plans in the hub, then writes everything in one
-- statement. That statement only applies if nothing it read has moved in between (another node
-- wrote for the same user, a purge, a revoke); otherwise this raises serialization_failure, the
-- whole statement rolls back, and the hub plans the batch again from a fresh read.
CREATE OR REPLACE FUNCTION synchub_write_guard(unchanged boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT unchanged THEN
    RAISE EXCEPTION 'synchub: a batch''s inputs changed before its write' USING ERRCODE = '40001';
  END IF;
  RETURN true;
END
$$;
