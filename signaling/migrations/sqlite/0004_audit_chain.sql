-- C3: the audit log becomes a hash chain. Each record keeps the hash of the record before it
-- (`prev_hash`, 64 zeros for the first) and its own `hash`: SHA-256 over its content and
-- `prev_hash` (see signaling/src/store/audit_chain.rs for the exact encoding). Editing,
-- removing, inserting or reordering records then breaks the chain at the first such record.
--
-- SQL cannot compute SHA-256, so records written before this migration keep NULL in both
-- columns here and are chained ("sealed") by the server in id order when it opens the
-- database, before it appends anything.
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;

-- Two records can never claim the same predecessor, so a writer working from a stale chain
-- head fails instead of forking the chain. (NULLs, the not-yet-sealed records, are distinct.)
CREATE UNIQUE INDEX audit_chain_link ON audit (prev_hash);

-- Still append-only. The one update allowed is sealing: setting both chain columns of a
-- record that has none, with every other column unchanged.
DROP TRIGGER audit_no_update;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
WHEN OLD.hash IS NOT NULL OR OLD.prev_hash IS NOT NULL
  OR NEW.hash IS NULL OR NEW.prev_hash IS NULL
  OR NEW.id IS NOT OLD.id OR NEW.session IS NOT OLD.session OR NEW.at IS NOT OLD.at
  OR NEW.actor IS NOT OLD.actor OR NEW.action IS NOT OLD.action OR NEW.record IS NOT OLD.record
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
