-- name: top-failing-agents
-- description: The 20 agents with the most dead letters between two days; agent_name is read from the original value when it is UTF-8 JSON.
-- parameters: from_day, to_day
SELECT
    json_extract_scalar(original_value, '$.agent_name') AS agent_name,
    COUNT(DISTINCT dead_letter_id) AS dead_letters,
    COUNT(DISTINCT error_type) AS error_types
FROM agent_actions_dlq
WHERE dt BETWEEN ? AND ?
    AND original_value_encoding = 'utf8'
GROUP BY 1
ORDER BY dead_letters DESC, agent_name
LIMIT 20
