-- name: dead-letters-by-correlation-id
-- description: Every dead letter of one correlation id, oldest first.
-- parameters: correlation_id
SELECT DISTINCT
    failed_at,
    dead_letter_id,
    original_topic,
    original_partition,
    original_offset,
    error_type,
    error_category,
    retry_count,
    error_message
FROM agent_actions_dlq
WHERE correlation_id = ?
ORDER BY failed_at, original_partition, original_offset
