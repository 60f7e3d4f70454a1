package agentdlq.connect.s3;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Collection;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.GZIPOutputStream;

import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Buffers envelopes per partition and day, and stores each buffer as one
 * object when Connect commits offsets.
 *
 * <p>Guarantee: {@link #flush} returns only after every buffered record is in
 * S3, and Connect commits the offsets only after {@code flush} returns. When a
 * store fails, the buffers are dropped and the exception makes Connect rewind
 * to the last committed offsets, so the records are delivered again. An object
 * is named by its first offset, so a repeated write of the same range replaces
 * the object; a range cut differently after a restart can leave a record in
 * two objects, which readers remove by {@code dead_letter_id}.
 */
public final class ArchiveSinkTask extends SinkTask {

    private static final Logger log = LoggerFactory.getLogger(ArchiveSinkTask.class);

    // Above this size a buffer is stored before its offsets are committed, so
    // a burst of large envelopes cannot exhaust the worker's heap.
    private static final int EARLY_STORE_BYTES = 32 * 1024 * 1024;
    private static final DateTimeFormatter DAY =
            DateTimeFormatter.ISO_LOCAL_DATE.withZone(ZoneOffset.UTC);

    private final Map<ObjectKey, Buffer> buffers = new LinkedHashMap<>();
    private ArchiveSinkConfig config;
    private ArchiveStore store;

    @Override
    public String version() {
        return ArchiveSinkConnector.VERSION;
    }

    @Override
    public void start(Map<String, String> props) {
        config = new ArchiveSinkConfig(props);
        store = new ArchiveStore(config);
        log.info("archiving to s3://{}/{}/ (endpoint {})", config.bucket(),
                config.prefix(), config.endpoint() == null ? "AWS" : config.endpoint());
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        // Oversized buffers are stored before this batch is added: when that
        // fails, Connect hands over the same batch again, and nothing of it
        // has been buffered yet.
        storeOversizedBuffers();
        for (SinkRecord record : records) {
            ObjectKey key = keyOf(record);
            buffers.computeIfAbsent(key, ignored -> new Buffer(record.kafkaOffset()))
                    .append(line(record));
        }
    }

    @Override
    public void flush(Map<TopicPartition, OffsetAndMetadata> currentOffsets) {
        try {
            for (Map.Entry<ObjectKey, Buffer> entry : buffers.entrySet()) {
                storeBuffer(entry.getKey(), entry.getValue());
            }
        } catch (RuntimeException error) {
            // Connect rewinds to the last committed offsets and delivers the
            // records again; keeping the buffers would write them twice.
            buffers.clear();
            throw new ConnectException("storing archive objects failed", error);
        }
        buffers.clear();
    }

    @Override
    public void close(Collection<TopicPartition> partitions) {
        // Offsets were committed (after a flush) before partitions are closed;
        // whatever is still buffered is delivered again to the next owner.
        buffers.keySet().removeIf(key -> partitions.contains(key.partition()));
    }

    @Override
    public void stop() {
        buffers.clear();
        if (store != null) {
            store.close();
        }
    }

    private void storeOversizedBuffers() {
        Iterator<Map.Entry<ObjectKey, Buffer>> entries = buffers.entrySet().iterator();
        while (entries.hasNext()) {
            Map.Entry<ObjectKey, Buffer> entry = entries.next();
            if (entry.getValue().size() < EARLY_STORE_BYTES) {
                continue;
            }
            try {
                storeBuffer(entry.getKey(), entry.getValue());
            } catch (RuntimeException error) {
                throw new RetriableException("storing a full archive buffer failed", error);
            }
            entries.remove();
        }
    }

    private void storeBuffer(ObjectKey key, Buffer buffer) {
        String name = objectName(key, buffer.firstOffset());
        byte[] body = buffer.gzip();
        store.put(name, body);
        log.debug("stored {} records of {} as {}", buffer.count(), key.partition(), name);
    }

    private ObjectKey keyOf(SinkRecord record) {
        // A record without a timestamp (only from pre-0.10 producers) is dated
        // by when the connector reads it.
        long millis = record.timestamp() != null
                ? record.timestamp() : System.currentTimeMillis();
        TopicPartition partition =
                new TopicPartition(record.topic(), record.kafkaPartition());
        return new ObjectKey(partition, DAY.format(Instant.ofEpochMilli(millis)));
    }

    private String objectName(ObjectKey key, long firstOffset) {
        TopicPartition partition = key.partition();
        return String.format("%s/%s/%s=%s/%s-%d-%020d.jsonl.gz", config.prefix(),
                partition.topic(), config.partitionColumn(), key.day(),
                partition.topic(), partition.partition(), firstOffset);
    }

    private static byte[] line(SinkRecord record) {
        Object value = record.value();
        String where = record.topic() + "-" + record.kafkaPartition() + "@"
                + record.kafkaOffset();
        if (value == null) {
            throw new DataException(where + " has no value; an envelope is required");
        }
        if (!(value instanceof byte[] bytes)) {
            throw new DataException(where + " is not bytes: set value.converter to"
                    + " org.apache.kafka.connect.converters.ByteArrayConverter");
        }
        // An envelope is one compact JSON object; a line break inside it would
        // split it across two lines of the archive.
        if (bytes.length == 0 || bytes[0] != '{') {
            throw new DataException(where + " is not a JSON object");
        }
        for (byte character : bytes) {
            if (character == '\n' || character == '\r') {
                throw new DataException(where + " spans several lines");
            }
        }
        return bytes;
    }

    private record ObjectKey(TopicPartition partition, String day) {
    }

    private static final class Buffer {
        private final long firstOffset;
        private final ByteArrayOutputStream lines = new ByteArrayOutputStream();
        private int count;

        Buffer(long firstOffset) {
            this.firstOffset = firstOffset;
        }

        long firstOffset() {
            return firstOffset;
        }

        int count() {
            return count;
        }

        int size() {
            return lines.size();
        }

        void append(byte[] line) {
            lines.writeBytes(line);
            lines.write('\n');
            count++;
        }

        byte[] gzip() {
            ByteArrayOutputStream compressed = new ByteArrayOutputStream();
            try (GZIPOutputStream gzip = new GZIPOutputStream(compressed)) {
                lines.writeTo(gzip);
            } catch (IOException error) {
                throw new ConnectException("compressing an archive object failed", error);
            }
            return compressed.toByteArray();
        }
    }
}
