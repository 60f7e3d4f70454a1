package agentdlq.connect.s3;

import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.S3ClientBuilder;
import software.amazon.awssdk.services.s3.model.PutObjectRequest;

/** Puts archive objects into the bucket with the AWS SDK. */
final class ArchiveStore implements AutoCloseable {

    private final S3Client client;
    private final String bucket;

    ArchiveStore(ArchiveSinkConfig config) {
        this.bucket = config.bucket();
        S3ClientBuilder builder = S3Client.builder()
                .region(Region.of(config.region()))
                .httpClientBuilder(UrlConnectionHttpClient.builder())
                .credentialsProvider(credentials(config))
                .forcePathStyle(config.pathStyleAccess());
        if (config.endpoint() != null) {
            // S3-compatible stores differ in their support of the SDK's
            // default flexible checksums (CRC trailers on every upload), so
            // against them checksums are sent only where the API requires.
            builder.endpointOverride(config.endpoint())
                    .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
                    .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED);
        }
        this.client = builder.build();
    }

    void put(String key, byte[] body) {
        PutObjectRequest request = PutObjectRequest.builder()
                .bucket(bucket)
                .key(key)
                .contentType("application/gzip")
                .build();
        client.putObject(request, RequestBody.fromBytes(body));
    }

    @Override
    public void close() {
        client.close();
    }

    private static AwsCredentialsProvider credentials(ArchiveSinkConfig config) {
        if (config.accessKeyId() == null) {
            return DefaultCredentialsProvider.builder().build();
        }
        return StaticCredentialsProvider.create(
                AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey()));
    }
}
