import { messageBusContract } from './contract-suite';
import { InProcessBus } from './in-process-bus';

const shared = new InProcessBus();
messageBusContract('in-process', async () => shared, 5_000);
