import net from 'node:net';

/**
 * What a simulated user container answers on `port`: its banner, or undefined when nothing
 * listens (refused, reset or silent for 3 s).
 */
export function readBanner(port: number, host = '127.0.0.1'): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', () => resolve(undefined));
    s.setTimeout(3000, () => {
      s.destroy();
      resolve(undefined);
    });
  });
}
