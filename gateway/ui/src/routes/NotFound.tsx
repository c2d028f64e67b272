import { Link } from "react-router";
import { useTitle } from "../hooks";

export default function NotFound() {
  useTitle("Not found");
  return (
    <div className="page">
      <h1>Not found</h1>
      <p>
        Nothing lives at this address. <Link to="/">Back to the projects</Link>.
      </p>
    </div>
  );
}
