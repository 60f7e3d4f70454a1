-- name: dead-letters-by-error-type
-- description: Dead letters per error type and category between two days, most frequent first.
-- parameters: from_day, to_day
SELECT
    error_type,
    error_category,
    COUNT(DISTINCT dead_letter_id) AS dead_letters,
    MIN(failed_at) AS first_failed_at,
    MAX(failed_at) AS last_failed_at
FROM agent_actions_dlq
WHERE dt BETWEEN ? AND ?
GROUP BY error_type, error_category
ORDER BY dead_letters DESC, error_type, error_category
