-- PostgreSQL twin of ../sqlite/0003_queue_auto_assign.sql.
-- R10: a queue can hand each session to the available agent with the fewest sessions.
ALTER TABLE queues ADD COLUMN auto_assign BOOLEAN NOT NULL DEFAULT FALSE;
