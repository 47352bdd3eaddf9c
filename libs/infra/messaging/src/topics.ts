/** Public topic names (SPEC section 8). A configurable prefix (KAFKA_TOPIC_PREFIX) may stand before them. */
export const TOPICS = {
  intakeCommands: 'backstop.intake.commands',
  pricingCommands: 'backstop.pricing.commands',
  marginCommands: 'backstop.margin.commands',
  settlementCommands: 'backstop.settlement.commands',
  replies: 'backstop.replies',
  intakeEvents: 'backstop.events.intake',
  pricingEvents: 'backstop.events.pricing',
  marginEvents: 'backstop.events.margin',
  settlementEvents: 'backstop.events.settlement',
  marketMarks: 'backstop.market.marks',
  creditScores: 'backstop.credit.scores',
  dlq: 'backstop.dlq',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export class TopicNames {
  constructor(readonly prefix = '') {}
  of(topic: TopicName): string {
    return `${this.prefix}${topic}`;
  }
  /**
   * Kafka consumer group id for a consumer name. Groups carry the same prefix as the topics, so two
   * deployments (or two test runs) sharing a broker never join each other's groups.
   */
  group(name: string): string {
    return `${this.prefix}${name}`;
  }
  all(): string[] {
    return Object.values(TOPICS).map((t) => this.of(t));
  }
}
