-- R10: a queue can hand each session to the available agent with the fewest sessions.
ALTER TABLE queues ADD COLUMN auto_assign INTEGER NOT NULL DEFAULT 0;
