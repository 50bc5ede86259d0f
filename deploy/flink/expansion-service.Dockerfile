# Beam's Java expansion service for its IO transforms (Kafka among them), for
# Python pipelines that use ReadFromKafka / WriteToKafka (stream.yaml).
#   docker build -f deploy/flink/expansion-service.Dockerfile -t REGISTRY/distill-radar-kafka-expansion:2.77.0 .
# The jar is fetched once, when the image is built; the service needs nothing at run time.
FROM eclipse-temurin:17-jre
ARG BEAM_VERSION=2.77.0
ADD https://repo1.maven.org/maven2/org/apache/beam/beam-sdks-java-io-expansion-service/${BEAM_VERSION}/beam-sdks-java-io-expansion-service-${BEAM_VERSION}.jar /opt/beam/expansion-service.jar
EXPOSE 8097
ENTRYPOINT ["java", "-jar", "/opt/beam/expansion-service.jar"]
