-- The drift last recorded in the audit for each object the portal keeps applied ('' = in step), so that a
-- drift is recorded once however many consoles watch the clusters (the conditional update decides who).
ALTER TABLE portal_objects ADD COLUMN drift TEXT NOT NULL DEFAULT '';
