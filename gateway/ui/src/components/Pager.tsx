import { useState } from "react";

/** The pages of a list visited so far, by their tokens: the API pages forward only, so going
 *  back is going to the token before. */
export interface Pages {
  token: string;
  first: boolean;
  back: () => void;
  next: (token: string) => void;
}

export function usePages(): Pages {
  const [tokens, setTokens] = useState<string[]>([""]);
  return {
    token: tokens[tokens.length - 1] ?? "",
    first: tokens.length === 1,
    back: () => setTokens(tokens.slice(0, -1)),
    next: (token) => setTokens([...tokens, token]),
  };
}

/** Previous and Next under a paged list; ``nextToken``: the page's next_page_token ("" on the last). */
export function Pager({ pages, nextToken }: { pages: Pages; nextToken: string | undefined }) {
  // A list that fits on its first page has nowhere to go.
  if (pages.first && !nextToken) return null;
  return (
    <nav className="pager" aria-label="Pages">
      <button type="button" className="button small ghost" disabled={pages.first} onClick={pages.back}>
        Previous
      </button>
      <button
        type="button"
        className="button small ghost"
        disabled={!nextToken}
        onClick={() => nextToken && pages.next(nextToken)}
      >
        Next
      </button>
    </nav>
  );
}
