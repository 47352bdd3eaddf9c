import httpBench from './http-commands.bench';
void httpBench();
