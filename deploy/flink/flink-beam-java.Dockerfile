# The Flink image of cluster.yaml plus Beam's Java SDK harness, for pipelines
# with Java transforms (Kafka): the expansion service of stream.yaml asks the
# TaskManager to start /opt/apache/beam/boot as a process (PROCESS environment).
#   docker build -f deploy/flink/flink-beam-java.Dockerfile -t REGISTRY/flink-beam-java:1.20-beam2.77.0 .
# then set it as spec.image of the FlinkDeployment in cluster.yaml.
FROM apache/beam_java17_sdk:2.77.0 AS beam
FROM flink:1.20-java17
COPY --from=beam /opt/apache/beam /opt/apache/beam
