package agentdlq.connect.s3;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Map;
import java.util.regex.Pattern;

import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.types.Password;

/** Settings of the dead-letter archive sink; every key is validated up front. */
public final class ArchiveSinkConfig extends AbstractConfig {

    public static final String BUCKET = "s3.bucket.name";
    public static final String REGION = "s3.region";
    public static final String ENDPOINT = "s3.endpoint.url";
    public static final String PATH_STYLE = "s3.path.style.access";
    public static final String ACCESS_KEY_ID = "aws.access.key.id";
    public static final String SECRET_ACCESS_KEY = "aws.secret.access.key";
    public static final String PREFIX = "archive.prefix";
    public static final String PARTITION_COLUMN = "archive.partition.column";

    private static final Pattern PREFIX_PATTERN =
            Pattern.compile("^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$");
    private static final Pattern COLUMN_PATTERN = Pattern.compile("^[a-z_][a-z0-9_]*$");

    public static final ConfigDef DEFINITION = new ConfigDef()
            .define(BUCKET, Type.STRING, ConfigDef.NO_DEFAULT_VALUE,
                    new ConfigDef.NonEmptyString(), Importance.HIGH,
                    "Archive bucket name.")
            .define(REGION, Type.STRING, ConfigDef.NO_DEFAULT_VALUE,
                    new ConfigDef.NonEmptyString(), Importance.HIGH,
                    "AWS region of the bucket (any valid region for S3-compatible stores).")
            .define(ENDPOINT, Type.STRING, null, ArchiveSinkConfig::checkEndpoint,
                    Importance.MEDIUM,
                    "S3 endpoint of an S3-compatible store, such as http://127.0.0.1:9000;"
                            + " empty for AWS itself.")
            .define(PATH_STYLE, Type.BOOLEAN, false, Importance.LOW,
                    "Address the bucket in the path instead of the host name.")
            .define(ACCESS_KEY_ID, Type.PASSWORD, null, Importance.MEDIUM,
                    "Static access key id; without it the default AWS credential chain"
                            + " of the worker is used.")
            .define(SECRET_ACCESS_KEY, Type.PASSWORD, null, Importance.MEDIUM,
                    "Secret access key, given together with the access key id.")
            .define(PREFIX, Type.STRING, "dead-letters", ArchiveSinkConfig::checkPrefix,
                    Importance.HIGH,
                    "Folder of the archive in the bucket, without slashes at either end.")
            .define(PARTITION_COLUMN, Type.STRING, "dt", ArchiveSinkConfig::checkColumn,
                    Importance.LOW, "Name of the Hive-style date partition column.");

    public ArchiveSinkConfig(Map<String, String> originals) {
        super(DEFINITION, originals);
        if ((accessKeyId() == null) != (secretAccessKey() == null)) {
            throw new ConfigException(ACCESS_KEY_ID + " and " + SECRET_ACCESS_KEY
                    + " go together: give both or neither");
        }
    }

    public String bucket() {
        return getString(BUCKET);
    }

    public String region() {
        return getString(REGION);
    }

    public URI endpoint() {
        String value = getString(ENDPOINT);
        return value == null || value.isEmpty() ? null : URI.create(value);
    }

    public boolean pathStyleAccess() {
        return getBoolean(PATH_STYLE);
    }

    public String accessKeyId() {
        return plain(getPassword(ACCESS_KEY_ID));
    }

    public String secretAccessKey() {
        return plain(getPassword(SECRET_ACCESS_KEY));
    }

    public String prefix() {
        return getString(PREFIX);
    }

    public String partitionColumn() {
        return getString(PARTITION_COLUMN);
    }

    private static String plain(Password password) {
        if (password == null || password.value().isEmpty()) {
            return null;
        }
        return password.value();
    }

    private static void checkEndpoint(String name, Object value) {
        if (value == null || value.toString().isEmpty()) {
            return;
        }
        try {
            URI uri = new URI(value.toString());
            if (uri.getScheme() == null || uri.getHost() == null) {
                throw new ConfigException(name, value, "must be an absolute http(s) URL");
            }
        } catch (URISyntaxException error) {
            throw new ConfigException(name, value, "is not a URL: " + error.getMessage());
        }
    }

    private static void checkPrefix(String name, Object value) {
        if (value == null || !PREFIX_PATTERN.matcher(value.toString()).matches()) {
            throw new ConfigException(name, value,
                    "must be S3-safe path segments without a leading or trailing slash");
        }
    }

    private static void checkColumn(String name, Object value) {
        if (value == null || !COLUMN_PATTERN.matcher(value.toString()).matches()) {
            throw new ConfigException(name, value, "must be a lower-case column name");
        }
    }
}
