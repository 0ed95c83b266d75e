-- How the console reaches each cluster: NULL = with the credentials given at registration; otherwise the
-- onboarding as JSON (Meshdeck's own ServiceAccount, when its short-lived token expires, a renewal problem).
ALTER TABLE clusters ADD COLUMN access TEXT;
