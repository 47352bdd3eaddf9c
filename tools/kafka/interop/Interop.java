// A desk's client, written with the official Apache Kafka Java client (the jars that come with the
// test broker), for the interop tests: it produces commands with a chosen compression.type and the
// producer settings the README recommends, and reads replies and events with their headers.
//
//   java -cp <kafka libs>/*:<classes> Interop produce <brokers> <topic> <compression>   (stdin: JSON lines {key,value,headers})
//   java -cp ... Interop consume <brokers> <topics,comma> <timeoutMs> <key,key,...>      (stdout: JSON lines)
//
// Extra client properties (TLS, SASL) come from the file named by INTEROP_PROPS, if set.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.FileReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class Interop {
  private static final ObjectMapper JSON = new ObjectMapper();
  // UTF-8 whatever the locale: the test compares non-ASCII values byte for byte.
  private static final java.io.PrintStream OUT = new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);

  public static void main(String[] args) throws Exception {
    switch (args[0]) {
      case "produce" -> produce(args[1], args[2], args[3]);
      case "consume" -> consume(args[1], args[2].split(","), Long.parseLong(args[3]), args.length > 4 ? args[4] : "");
      default -> throw new IllegalArgumentException("unknown command " + args[0]);
    }
  }

  private static Properties base(String brokers) throws Exception {
    Properties p = new Properties();
    p.put("bootstrap.servers", brokers);
    String extra = System.getenv("INTEROP_PROPS");
    if (extra != null && !extra.isEmpty()) {
      try (FileReader r = new FileReader(extra, StandardCharsets.UTF_8)) {
        p.load(r);
      }
    }
    return p;
  }

  private static void produce(String brokers, String topic, String compression) throws Exception {
    Properties p = base(brokers);
    // What a desk should use: acks=all with idempotence (no loss, no duplicate on retry), a codec.
    p.put("acks", "all");
    p.put("enable.idempotence", "true");
    p.put("compression.type", compression);
    p.put("linger.ms", "5");
    p.put("key.serializer", StringSerializer.class.getName());
    p.put("value.serializer", StringSerializer.class.getName());
    List<Future<RecordMetadata>> sent = new ArrayList<>();
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(p);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        if (line.isBlank()) continue;
        JsonNode m = JSON.readTree(line);
        ProducerRecord<String, String> record = new ProducerRecord<>(topic, m.get("key").asText(), m.get("value").asText());
        JsonNode headers = m.get("headers");
        if (headers != null) {
          for (Iterator<Map.Entry<String, JsonNode>> it = headers.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> h = it.next();
            record.headers().add(h.getKey(), h.getValue().asText().getBytes(StandardCharsets.UTF_8));
          }
        }
        sent.add(producer.send(record));
      }
      producer.flush();
      for (Future<RecordMetadata> f : sent) {
        RecordMetadata md = f.get();
        OUT.println("{\"partition\":" + md.partition() + ",\"offset\":" + md.offset() + "}");
      }
    }
  }

  /** Reads the topics from the beginning (assigned, no group) until every wanted key was seen. */
  private static void consume(String brokers, String[] topics, long timeoutMs, String wantedKeys) throws Exception {
    Properties p = base(brokers);
    p.put("key.deserializer", StringDeserializer.class.getName());
    p.put("value.deserializer", StringDeserializer.class.getName());
    p.put("enable.auto.commit", "false");
    Set<String> wanted = new HashSet<>(wantedKeys.isEmpty() ? List.of() : Arrays.asList(wantedKeys.split(",")));
    long deadline = System.currentTimeMillis() + timeoutMs;
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(p)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (String topic : topics) {
        for (PartitionInfo info : consumer.partitionsFor(topic, Duration.ofMillis(timeoutMs))) {
          partitions.add(new TopicPartition(topic, info.partition()));
        }
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      while (System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          ObjectNode out = JSON.createObjectNode();
          out.put("topic", r.topic());
          out.put("key", r.key());
          out.put("value", r.value());
          ObjectNode headers = out.putObject("headers");
          for (Header h : r.headers()) headers.put(h.key(), new String(h.value(), StandardCharsets.UTF_8));
          OUT.println(JSON.writeValueAsString(out));
          wanted.remove(r.key());
        }
        if (wanted.isEmpty()) break;
      }
    }
    OUT.flush();
    if (!wanted.isEmpty()) {
      System.err.println("Interop consume: not seen before the timeout: " + wanted);
      System.exit(3);
    }
  }
}
