/** A failed call's message, announced to screen readers; nothing when there is none. */
export function ErrorLine(props: { error: string | null }) {
  if (props.error === null) return null;
  return (
    <p class="error" role="alert">
      {props.error}
    </p>
  );
}
