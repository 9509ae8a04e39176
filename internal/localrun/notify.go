package localrun

import (
	"arcbench/internal/emulators"
	"arcbench/shared/handlers/complete"
)

// Notification is a message a run's handlers published to the stage's
// topic (the SNS stand-in accepted it): what a subscriber would receive.
type Notification struct {
	TopicArn string `json:"topic_arn"`
	Subject  string `json:"subject"`
	Message  string `json:"message"`
}

// createTopics makes the template's topics the SNS stand-in's: a Publish to
// any other ARN is answered as SNS answers a topic that does not exist.
func createTopics(t *Template, sns *emulators.SNS) error {
	for _, id := range t.OfType("AWS::SNS::Topic") {
		topic, err := t.ref(id)
		if err != nil {
			return err
		}
		sns.CreateTopic(topic.(string))
	}
	return nil
}

// notifications are the messages published about runID so far (by its
// run_id message attribute), in order.
func (s *Session) notifications(runID string) []Notification {
	var out []Notification
	for _, p := range s.Stack.Published() {
		if runID == "" || p.MessageAttributes[complete.AttributeRunID].StringValue != runID {
			continue
		}
		out = append(out, Notification{TopicArn: p.TopicArn, Subject: p.Subject, Message: p.Message})
	}
	return out
}
