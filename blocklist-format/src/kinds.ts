/** Entry kinds (SPEC.md 1.4). Stored as their ASCII code in compact arrays. */
export type Kind = 'D' | 'H' | 'U' | 'P';

export const KIND_D = 0x44;
export const KIND_H = 0x48;
export const KIND_U = 0x55;
export const KIND_P = 0x50;

export const KINDS: readonly Kind[] = ['D', 'H', 'U', 'P'];

export function kindFromCode(code: number): Kind | undefined {
  switch (code) {
    case KIND_D:
      return 'D';
    case KIND_H:
      return 'H';
    case KIND_U:
      return 'U';
    case KIND_P:
      return 'P';
    default:
      return undefined;
  }
}
