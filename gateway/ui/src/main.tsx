import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { RouterProvider } from "react-router";
import { refused } from "./api/problem";
import { router } from "./router";
import "./styles.css";

const queryClient = new QueryClient({
  defaultOptions: {
    // Once more after a failure that may pass (the gateway away, a 5xx); never after a 4xx, which
    // asking again answers the same (a run that does not exist is no more found the second time).
    queries: { staleTime: 5_000, refetchOnWindowFocus: false, retry: (failures, error) => failures < 1 && !refused(error) },
  },
});

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </StrictMode>,
  );
}
