package agentdlq.bench;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.transforms.Transformation;

/**
 * Gives a schemaless agent action the Struct schema of the agent_actions
 * columns, which a JDBC sink needs to write it.
 *
 * <p>The benchmark feeds Kafka Connect the same bytes as our consumer: plain
 * JSON agent actions, which JsonConverter (schemas.enable=false) turns into a
 * Map. A JDBC sink refuses a record without a schema, so this transform puts
 * the Map's fields into a Struct. A value that is not an agent action raises
 * DataException, which Connect's error handling (errors.tolerance=all) sends
 * to its dead-letter queue like a record the converter could not read.
 */
public final class AgentActionStruct<R extends ConnectRecord<R>> implements Transformation<R> {

    // Debezium's JDBC sink binds these semantic types as jsonb and timestamptz.
    private static final Schema DETAILS =
            SchemaBuilder.string().optional().name("io.debezium.data.Json").version(1).build();
    private static final Schema MOMENT =
            SchemaBuilder.string().name("io.debezium.time.ZonedTimestamp").version(1).build();

    static final Schema VALUE =
            SchemaBuilder.struct()
                    .name("agentdlq.bench.AgentAction")
                    .field("correlation_id", Schema.STRING_SCHEMA)
                    .field("agent_name", Schema.STRING_SCHEMA)
                    .field("action_type", Schema.STRING_SCHEMA)
                    .field("action_name", Schema.STRING_SCHEMA)
                    .field("action_details", DETAILS)
                    .field("debug_mode", Schema.BOOLEAN_SCHEMA)
                    .field("duration_ms", Schema.OPTIONAL_INT64_SCHEMA)
                    .field("timestamp", MOMENT)
                    .build();

    private final ObjectMapper json = new ObjectMapper();

    @Override
    public R apply(R record) {
        if (!(record.value() instanceof Map<?, ?> action)) {
            throw new DataException("the value is not a JSON object");
        }
        Struct value = new Struct(VALUE);
        for (String name : new String[] {"correlation_id", "agent_name", "action_type", "action_name", "timestamp"}) {
            value.put(name, text(action, name));
        }
        value.put("action_details", details(action.get("action_details")));
        value.put("debug_mode", Boolean.TRUE.equals(action.get("debug_mode")));
        value.put("duration_ms", number(action.get("duration_ms")));
        return record.newRecord(
                record.topic(),
                record.kafkaPartition(),
                record.keySchema(),
                record.key(),
                VALUE,
                value,
                record.timestamp(),
                record.headers());
    }

    private static String text(Map<?, ?> action, String name) {
        if (!(action.get(name) instanceof String text)) {
            throw new DataException(name + " is missing or not a string");
        }
        return text;
    }

    private static Long number(Object raw) {
        if (raw == null) {
            return null;
        }
        if (!(raw instanceof Number number)) {
            throw new DataException("duration_ms is not a number");
        }
        return number.longValue();
    }

    private String details(Object raw) {
        if (raw == null) {
            return null;
        }
        try {
            return json.writeValueAsString(raw);
        } catch (JsonProcessingException error) {
            throw new DataException("action_details cannot be written as JSON", error);
        }
    }

    @Override
    public ConfigDef config() {
        return new ConfigDef();
    }

    @Override
    public void configure(Map<String, ?> configs) {}

    @Override
    public void close() {}
}
