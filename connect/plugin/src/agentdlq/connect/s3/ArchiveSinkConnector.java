package agentdlq.connect.s3;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.Config;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.ConfigValue;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/**
 * Copies dead-letter envelopes to S3 as gzip JSON lines under Hive-style day
 * partitions: {@code <prefix>/<topic>/<column>=YYYY-MM-DD/<topic>-<partition>-<offset>.jsonl.gz}.
 *
 * <p>Each record value is written byte for byte as one line, so the archive
 * holds exactly what the topic holds. Offsets are committed only after the
 * objects holding their records are stored: delivery is at least once, and a
 * record is never skipped.
 */
public final class ArchiveSinkConnector extends SinkConnector {

    static final String VERSION = "1.0.0";

    private Map<String, String> settings;

    @Override
    public String version() {
        return VERSION;
    }

    @Override
    public void start(Map<String, String> props) {
        new ArchiveSinkConfig(props);
        settings = new HashMap<>(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return ArchiveSinkTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        List<Map<String, String>> configs = new ArrayList<>(maxTasks);
        for (int task = 0; task < maxTasks; task++) {
            configs.add(new HashMap<>(settings));
        }
        return configs;
    }

    @Override
    public void stop() {
        settings = null;
    }

    @Override
    public ConfigDef config() {
        return ArchiveSinkConfig.DEFINITION;
    }

    @Override
    public Config validate(Map<String, String> connectorConfigs) {
        Config result = super.validate(connectorConfigs);
        // The per-key validators cannot see that the two credentials go together.
        boolean keysValid = result.configValues().stream()
                .allMatch(value -> value.errorMessages().isEmpty());
        if (keysValid) {
            try {
                new ArchiveSinkConfig(connectorConfigs);
            } catch (ConfigException error) {
                for (ConfigValue value : result.configValues()) {
                    if (value.name().equals(ArchiveSinkConfig.ACCESS_KEY_ID)) {
                        value.addErrorMessage(error.getMessage());
                    }
                }
            }
        }
        return result;
    }
}
