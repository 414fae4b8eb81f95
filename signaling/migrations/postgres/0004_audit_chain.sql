-- PostgreSQL twin of ../sqlite/0004_audit_chain.sql: the audit log becomes a hash chain
-- (see there and signaling/src/store/audit_chain.rs).
ALTER TABLE audit ADD COLUMN prev_hash TEXT;
ALTER TABLE audit ADD COLUMN hash TEXT;

-- Two records can never claim the same predecessor. (NULLs are distinct.)
CREATE UNIQUE INDEX audit_chain_link ON audit (prev_hash);

-- Still append-only. The one update allowed is sealing: setting both chain columns of a
-- record that has none, with every other column unchanged.
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.hash IS NULL AND OLD.prev_hash IS NULL
       AND NEW.hash IS NOT NULL AND NEW.prev_hash IS NOT NULL
       AND NEW.id = OLD.id AND NEW.session = OLD.session AND NEW.at = OLD.at
       AND NEW.actor IS NOT DISTINCT FROM OLD.actor AND NEW.action = OLD.action
       AND NEW.record = OLD.record THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
